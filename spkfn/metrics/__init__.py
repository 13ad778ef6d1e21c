"""spkfn.metrics"""
