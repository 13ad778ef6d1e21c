"""spkfn.generate"""
