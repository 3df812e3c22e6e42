"""The text classifier family (``task: classification``): hashed n-gram bag embedding + nested MLP head.

    ClassifierConfig -> NestedClassifier(features, widths) --extract--> StandaloneClassifier --save--> folder
"""
