"""havm.agents"""
