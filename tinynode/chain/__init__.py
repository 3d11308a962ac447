"""Chain selection, reorgs and the single chain writer (L4). See chainstate.py for the pipeline."""
