CREATE SCHEMA IF NOT EXISTS ${params.published_schema};
DROP TABLE IF EXISTS ${params.published_schema}.${params.name};
CREATE TABLE ${params.published_schema}.${params.name} AS SELECT * FROM ${params.table};
