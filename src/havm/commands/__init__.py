"""havm.commands"""
