"""Model families: each one folder with the same file names for the same jobs, found through one registry.

    families/<family>/section.py    the family's model section of the run config, its defaults and checks (no torch)
    families/<family>/family.py     the `ModelFamily` the pipeline's steps call (`matta_core.families.base`)
    families/<family>/config.py     the nested model's shape (widths, sizes)
    families/<family>/model.py      the nested (Matryoshka) model: the TA with every sub-model inside
    families/<family>/model_io.py   the trained nested model as a folder
    families/<family>/standalone.py the standalone (servable) model
    families/<family>/loss.py       the MatTA objective of one batch
    families/<family>/data.py       the training data and its batches
    families/<family>/trainer.py    one training step on the shared loop (`matta_core.training.loop`)
    families/<family>/extract.py    a standalone model cut out of the nested one
    families/<family>/evaluate.py   quality and serving cost of a standalone model
    families/<family>/*_step.py     the pipeline steps over artifact folders (prepare, teacher, train, extract,
                                    evaluate, report)

`matta_core.families.registry.family_for(task)` finds a family by the run config's ``task``.
"""
