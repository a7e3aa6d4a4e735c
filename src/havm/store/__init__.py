"""havm.store"""
