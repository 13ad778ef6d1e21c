"""spkfn.sorting"""
