"""Adapters: the libraries behind the dispatch ports (urllib3, boto3, Powertools), their errors translated."""
