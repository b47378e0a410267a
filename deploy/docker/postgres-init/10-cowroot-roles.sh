#!/usr/bin/env bash
# The two database roles of README § Security, made once when the postgres container initialises an empty
# volume (docker-entrypoint-initdb.d runs this as POSTGRES_USER, a superuser). By hand on an existing
# database: the same command with PG* variables pointing at it as a superuser.
#   COWROOT_OWNER_ROLE (cowroot_owner): owns the schema, runs the migrations (DATABASE_MIGRATION_URL)
#   COWROOT_APP_ROLE   (cowroot_app):   the server (DATABASE_URL); granted its rights by the server at start
set -euo pipefail
: "${COWROOT_OWNER_PASSWORD:?set COWROOT_OWNER_PASSWORD}" "${COWROOT_APP_PASSWORD:?set COWROOT_APP_PASSWORD}"
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet \
  --username "${POSTGRES_USER:-${PGUSER:-postgres}}" --dbname "${POSTGRES_DB:-${PGDATABASE:-cowroot}}" \
  -v owner="${COWROOT_OWNER_ROLE:-cowroot_owner}" -v app="${COWROOT_APP_ROLE:-cowroot_app}" \
  -v owner_password="$COWROOT_OWNER_PASSWORD" -v app_password="$COWROOT_APP_PASSWORD" <<'SQL'
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
-- NOSUPERUSER NOCREATEROLE NOBYPASSRLS are the defaults: the server's role can grant itself nothing
CREATE ROLE :"app" LOGIN PASSWORD :'app_password';
SELECT current_database() AS db \gset
ALTER DATABASE :"db" OWNER TO :"owner";
ALTER SCHEMA public OWNER TO :"owner";
-- PostgreSQL < 15 lets every role create objects in public
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
