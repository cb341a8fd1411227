-- Start-up looks up the replicas that still own running attempts (dead predecessors).
CREATE INDEX attempts_running ON attempts (worker_id) WHERE status = 'running';
