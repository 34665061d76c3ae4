-- The national view's queries, in one place (ent_audit.analyses.national reads this file).
--
-- Plain SQL over one relation, `publications`: the union (by column name) of the académies'
-- published Parquet files (schema in national.py, COLUMNS). DuckDB defines it with
-- read_parquet([...], union_by_name = true) on one machine; on a distributed engine (Trino,
-- Spark SQL) it is a table over the same files on object storage and these queries run
-- unchanged: no DuckDB-only function, no integer division (CAST ... AS DOUBLE), no pandas.
--
-- Sums are exact because the académies' populations are disjoint: a person belongs to one
-- académie's AAF, so people counts (unique visitors included) of different académies add up.
-- Never sum unique visitors over periods: every file covers the same period (checked first).
-- Rates are recomputed from the summed counts, never averaged.

-- name: identities
-- One row per published file: who published it, for which period and state.
SELECT filename,
       min(schema_version) AS schema_version,
       min(academie) AS academie,
       max(academie) AS academie_max,
       min(store_id) AS store_id,
       min(period_start) AS period_start,
       max(period_start) AS period_start_max,
       min(period_end) AS period_end,
       max(period_end) AS period_end_max,
       min(state_date) AS state_date,
       min(code_version) AS code_version,
       count(*) AS rows
FROM publications
GROUP BY filename
ORDER BY filename;

-- name: indicators
-- The pilot console's indicators at national, académie and département level, per profile
-- ('*' = every profile). National and académie rows come from the académie rows (exact
-- distinct counts of each store), département rows from the département rows (exact distinct
-- counts per département of each store, grouped by académie and département: never summed
-- over stores).
WITH counts AS (
    SELECT 0 AS level_rank, 'national' AS level,
           CAST(NULL AS VARCHAR) AS academie, CAST(NULL AS VARCHAR) AS departement, profile,
           count(*) AS publications,
           sum(schools_total) AS schools_total, sum(schools_open) AS schools_open,
           sum(schools_stopped) AS schools_stopped,
           sum(loaded) AS loaded, sum(activated) AS activated,
           sum(active_7d) AS active_7d, sum(active_30d) AS active_30d,
           sum(visits) AS visits, sum(unique_visitors) AS unique_visitors,
           sum(connections) AS connections
    FROM publications
    WHERE level = 'academie'
    GROUP BY profile
    UNION ALL
    SELECT 1, 'academie', academie, CAST(NULL AS VARCHAR), profile, count(*),
           sum(schools_total), sum(schools_open), sum(schools_stopped),
           sum(loaded), sum(activated), sum(active_7d), sum(active_30d),
           sum(visits), sum(unique_visitors), sum(connections)
    FROM publications
    WHERE level = 'academie'
    GROUP BY academie, profile
    UNION ALL
    SELECT 2, 'departement', academie, departement, profile, count(*),
           sum(schools_total), sum(schools_open), sum(schools_stopped),
           sum(loaded), sum(activated), sum(active_7d), sum(active_30d),
           sum(visits), sum(unique_visitors), sum(connections)
    FROM publications
    WHERE level = 'departement'
    GROUP BY academie, departement, profile
)
SELECT level, academie, departement, profile, publications,
       schools_total, schools_open,
       round(CAST(schools_open AS DOUBLE) / NULLIF(schools_total, 0), 4) AS open_share,
       schools_stopped,
       loaded, activated,
       round(CAST(activated AS DOUBLE) / NULLIF(loaded, 0), 4) AS activation_rate,
       active_7d, active_30d,
       round(CAST(active_30d AS DOUBLE) / NULLIF(activated, 0), 4) AS active_rate,
       visits, unique_visitors,
       round(CAST(visits AS DOUBLE) / NULLIF(unique_visitors, 0), 2) AS visits_per_visitor,
       connections
FROM counts
ORDER BY level_rank, academie, departement, CASE WHEN profile = '*' THEN 0 ELSE 1 END, profile;
