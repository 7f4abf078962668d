-- hydra-bottleneck: schema version 88 → 89 on NixOS/hydra's store-dir line of development
-- (migrations/upgrade-89.sql, snapshot schemas/hydra-89.sql @ 9b3e8af9): a nullable storeDir
-- beside every store-path column, and BuildProducts.subPath. Nothing is converted here:
-- `hydra-backfill-store-dirs` (@ 9b3e8af9) rewrites rows afterwards, in batches, table after
-- table (Builds by id, then BuildSteps, BuildOutputs, BuildStepOutputs by build, ...), each
-- in ascending order. Until it is through, a converted row holds the basename
-- (`<hash>-<name>`) and storeDir (`/nix/store`, no trailing slash), a row not reached yet the
-- full path and a null storeDir. Written for this tool; applied on top of upgrade-88.sql.
-- docs/hydra.md §1.
--
-- Another line of development numbers a different change 89 (JobsetEvals.eval_build and
-- JobsetEvals.completed, NixOS/hydra @ 73b2d884): the readers go by the columns a database
-- has, not by its number.

alter table Builds add column storeDir text;
alter table BuildSteps add column storeDir text;        -- also the store of resolvedDrvPath
alter table BuildOutputs add column storeDir text;
alter table BuildStepOutputs add column storeDir text;
alter table BuildInputs add column storeDir text;
alter table BuildProducts add column storeDir text;
-- A product may name a file inside a store path: the part below the store path goes here.
alter table BuildProducts add column subPath text;
alter table JobsetEvalInputs add column storeDir text;
alter table FailedPaths add column storeDir text;
alter table CachedPathInputs add column storeDir text;
alter table CachedSubversionInputs add column storeDir text;
alter table CachedBazaarInputs add column storeDir text;
alter table CachedGitInputs add column storeDir text;
alter table CachedDarcsInputs add column storeDir text;
alter table CachedHgInputs add column storeDir text;
alter table CachedCVSInputs add column storeDir text;

update SchemaVersion set version = 89;
