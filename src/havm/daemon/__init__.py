"""havm.daemon"""
