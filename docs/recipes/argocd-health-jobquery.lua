-- Argo CD health check for dlc.dlcsync.io/JobQuery.
-- Install under resource.customizations.health.dlc.dlcsync.io_JobQuery in argocd-cm.
hs = {}
if obj.status == nil or obj.status.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the first sync"
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to sync the new spec"
  return hs
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Stalled" and c.status == "True" then
    hs.status = "Degraded"
    hs.message = c.reason .. ": " .. (c.message or "")
    return hs
  end
end
for _, c in ipairs(obj.status.conditions) do
  if c.type == "Ready" then
    if c.status == "True" then
      hs.status = "Healthy"
    elseif c.reason == "Suspended" then
      hs.status = "Suspended"
    else
      hs.status = "Progressing"
    end
    hs.message = c.message or c.reason
    return hs
  end
end
hs.status = "Progressing"
hs.message = "Waiting for the first sync"
return hs
