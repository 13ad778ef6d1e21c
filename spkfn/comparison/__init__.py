"""spkfn.comparison"""
