"""Local Kafka and PostgreSQL without Docker (deploy/local): start, stop and inspect them."""
