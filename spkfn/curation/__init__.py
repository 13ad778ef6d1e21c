"""spkfn.curation"""
