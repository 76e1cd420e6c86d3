-- Argo CD health check for dlc.dlcsync.io/DLCJobSnapshot: the PAI-DLC job's own state.
-- Install under resource.customizations.health.dlc.dlcsync.io_DLCJobSnapshot in argocd-cm.
hs = {}
local phase = obj.status and obj.status.phase or nil
if phase == nil then
  hs.status = "Progressing"
  hs.message = "No job data yet"
  return hs
end
local reason = obj.status.reasonCode or ""
if phase == "Succeeded" then
  hs.status = "Healthy"
elseif phase == "Failed" then
  hs.status = "Degraded"
elseif phase == "Stopped" then
  hs.status = "Suspended"
elseif phase == "Running" or phase == "SucceededReserving" then
  hs.status = "Healthy"
elseif phase == "FailedReserving" then
  hs.status = "Degraded"
else
  hs.status = "Progressing"
end
hs.message = "Job " .. phase
if reason ~= "" then
  hs.message = hs.message .. " (" .. reason .. ")"
end
return hs
