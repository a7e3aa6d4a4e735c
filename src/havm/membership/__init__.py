"""havm.membership"""
