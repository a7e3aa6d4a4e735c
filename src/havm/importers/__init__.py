"""havm.importers"""
