"""spkfn.views"""
