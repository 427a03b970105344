-- Argo CD health for milvusops.dev MilvusCollection, MilvusConnection and MilvusAlias.
-- Healthy: Ready=True. Suspended: paused. Progressing: not yet observed, or work (or a retry) under way.
-- Degraded: Stalled=True, i.e. retrying cannot help until someone changes something; or Degraded=True,
-- Milvus reports a replica without a query node (still loaded and serving from the other replicas).
local hs = {status = "Progressing", message = "waiting for the operator"}
if obj.metadata.deletionTimestamp ~= nil then
  hs.message = "being deleted"
  return hs
end
if obj.status == nil or obj.status.conditions == nil then
  return hs
end
if obj.metadata.generation ~= nil and obj.status.observedGeneration ~= obj.metadata.generation then
  hs.message = "waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local conditions = {}
for _, condition in ipairs(obj.status.conditions) do
  conditions[condition.type] = condition
end
local ready = conditions["Ready"]
if ready == nil then
  return hs
end
hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
local degraded = conditions["Degraded"]
if ready.status == "True" and degraded ~= nil and degraded.status == "True" then
  hs.status = "Degraded"
  hs.message = (degraded.reason or "") .. ": " .. (degraded.message or "")
elseif ready.status == "True" then
  hs.status = "Healthy"
elseif ready.reason == "Paused" then
  hs.status = "Suspended"
elseif conditions["Stalled"] ~= nil and conditions["Stalled"].status == "True" then
  hs.status = "Degraded"
end
return hs
