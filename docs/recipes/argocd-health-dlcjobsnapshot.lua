-- Argo CD health check for dlc.dlcsync.io/DLCJobSnapshot: the PAI-DLC job's own state.
-- Install under resource.customizations.health.dlc.dlcsync.io_DLCJobSnapshot in argocd-cm.
-- It agrees with the snapshot's conditions (test/recipes checks both against one table):
-- a job that ended is Healthy (Succeeded), Degraded (Failed) or Suspended (Stopped) from its
-- reservation period on; a running job is Healthy; every other status is Progressing.
local healthOf = {
  Running = "Healthy",
  SucceededReserving = "Healthy",
  Succeeded = "Healthy",
  FailedReserving = "Degraded",
  Failed = "Degraded",
  Stopped = "Suspended",
}
hs = {}
local phase = obj.status and obj.status.phase or nil
if phase == nil then
  hs.status = "Progressing"
  hs.message = "No job data yet"
  return hs
end
hs.status = healthOf[phase] or "Progressing"
hs.message = "Job " .. phase
local reason = obj.status.reasonCode or ""
if reason ~= "" then
  hs.message = hs.message .. " (" .. reason .. ")"
end
return hs
