"""havm.fencing"""
