"""The build farm: service replicas on PostgreSQL and build agents on many engines.

Needs the ``farm`` extra (psycopg 3). The embedded default never imports this package.
"""
