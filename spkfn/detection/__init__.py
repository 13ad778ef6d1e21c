"""spkfn.detection"""
