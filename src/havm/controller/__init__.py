"""havm.controller"""
