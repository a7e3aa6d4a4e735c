"""havm.lab"""
