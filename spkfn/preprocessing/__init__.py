"""spkfn.preprocessing"""
