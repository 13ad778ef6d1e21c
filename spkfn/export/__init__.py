"""spkfn.export"""
