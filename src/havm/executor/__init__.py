"""havm.executor"""
