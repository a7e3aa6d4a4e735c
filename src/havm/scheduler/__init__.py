"""havm.scheduler"""
