"""spkfn.workflow"""
