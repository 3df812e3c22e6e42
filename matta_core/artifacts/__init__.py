"""The pipeline's artifact folders, the same for every model family: their file names (`layout`) and how a
report is shown (`report_views`)."""
