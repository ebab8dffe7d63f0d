"""Dramatiq actors of the customers app: thin, ids in, one service call, safe to run twice."""
