"""MatTA core library."""
