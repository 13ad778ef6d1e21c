"""spkfn.plotting"""
