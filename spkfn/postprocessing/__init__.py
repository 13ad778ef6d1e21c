"""spkfn.postprocessing"""
