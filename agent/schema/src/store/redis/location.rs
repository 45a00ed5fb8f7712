//! The location side of [`super::RedisStore`]: `reg:{domain}:{user}`
//! bindings (written by proxies, one script per upsert so concurrent
//! proxies never shorten each other's key TTL) and `tenant:{domain}` pins.
//! Garbage in either is logged and skipped.

use std::collections::BTreeMap;

use redis::{RedisResult, Script, Value};

use crate::binding::{Binding, KEY_GRACE};
use crate::keys::{Keys, NodeId};
use crate::lease::ProxyLease;
use crate::store::link::Link;
use crate::store::{StoreError, now_ms};

use super::read::{escape_glob, scan};

/// Upsert one binding, drop expired ones, expire the key after the latest.
/// Fields that are not bindings are left alone (they go with the key).
/// `%d` because Lua would print a big number as `1.7e+12`.
const PUT_BINDING_LUA: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(ARGV[3])
local latest = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local ok, b = pcall(cjson.decode, all[i + 1])
  if ok and type(b) == 'table' and type(b.expires_ms) == 'number' then
    if b.expires_ms <= now then
      redis.call('HDEL', KEYS[1], all[i])
    elseif b.expires_ms > latest then
      latest = b.expires_ms
    end
  end
end
if latest > 0 then
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', latest + tonumber(ARGV[4])))
elseif redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
";

/// Keys per `MGET`.
const MGET_CHUNK: usize = 1000;

fn grace_ms() -> u64 {
    u64::try_from(KEY_GRACE.as_millis()).unwrap_or(u64::MAX)
}

/// [`crate::Store::put_binding`].
pub(super) async fn put(
    link: &Link,
    keys: &Keys,
    domain: &str,
    user: &str,
    b: &Binding,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(b)
        .map_err(|e| StoreError::Config(format!("binding not serialisable: {e}")))?;
    let script = Script::new(PUT_BINDING_LUA);
    let mut inv = script.key(keys.reg(domain, user));
    inv.arg(&b.contact).arg(json).arg(now_ms()).arg(grace_ms());
    link.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await })
        .await
        .map(drop)
}

/// [`crate::Store::remove_binding`].
pub(super) async fn remove(
    link: &Link,
    keys: &Keys,
    domain: &str,
    user: &str,
    contact: &str,
) -> Result<(), StoreError> {
    let key = keys.reg(domain, user);
    link.run(|mut c| async move {
        redis::cmd("HDEL")
            .arg(key)
            .arg(contact)
            .query_async::<()>(&mut c)
            .await
    })
    .await
}

/// [`crate::Store::remove_bindings`].
pub(super) async fn remove_all(
    link: &Link,
    keys: &Keys,
    domain: &str,
    user: &str,
) -> Result<(), StoreError> {
    let key = keys.reg(domain, user);
    link.run(|mut c| async move { redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await })
        .await
}

/// [`crate::Store::bindings`]: a key of the wrong type reads as empty.
pub(super) async fn get(
    link: &Link,
    keys: &Keys,
    domain: &str,
    user: &str,
) -> Result<Vec<Binding>, StoreError> {
    let key = keys.reg(domain, user);
    let mut p = redis::pipe();
    p.ignore_errors();
    p.cmd("HGETALL").arg(&key);
    let mut res: Vec<RedisResult<Value>> = link
        .run(|mut c| async move { p.query_async(&mut c).await })
        .await?;
    let reply = res
        .pop()
        .unwrap_or_else(|| Err((redis::ErrorKind::Parse, "short reply").into()))
        .and_then(|v| Ok(redis::from_redis_value::<BTreeMap<Vec<u8>, Vec<u8>>>(v)?));
    let fields = match reply {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(key, error = %e, "unreadable reg key; no bindings");
            return Ok(Vec::new());
        }
    };
    let now = now_ms();
    Ok(fields
        .iter()
        .filter_map(|(f, v)| {
            Binding::parse_stored(
                &key,
                &String::from_utf8_lossy(f),
                &String::from_utf8_lossy(v),
            )
        })
        .filter(|b| b.live_at(now))
        .collect())
}

/// [`crate::LocationStore::all_bindings`]: SCAN `reg:*`, then each key.
pub(super) async fn all(
    link: &Link,
    keys: &Keys,
    max_users: usize,
) -> Result<Vec<(String, String, Binding)>, StoreError> {
    let head = format!("{}reg:", keys.prefix());
    let found = scan(link, &escape_glob(&format!("{head}*")), "reg").await?;
    let mut out = Vec::new();
    for key in found.iter().take(max_users) {
        let key = String::from_utf8_lossy(key);
        let Some((domain, user)) = key
            .strip_prefix(head.as_str())
            .and_then(|rest| rest.split_once(':'))
        else {
            continue;
        };
        for b in get(link, keys, domain, user).await? {
            out.push((domain.to_owned(), user.to_owned(), b));
        }
    }
    Ok(out)
}

/// Claim `proxy:{id}` unless another instance holds it (then return its
/// lease, unchanged).
const CLAIM_PROXY_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, l = pcall(cjson.decode, cur)
  if ok and type(l) == 'table' and l.instance ~= ARGV[2] then
    return cur
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return false
";

/// Delete `proxy:{id}` only when `instance` holds it.
const RELEASE_PROXY_LUA: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, l = pcall(cjson.decode, cur)
  if ok and type(l) == 'table' and l.instance == ARGV[1] then
    redis.call('DEL', KEYS[1])
  end
end
return 0
";

/// [`crate::LocationStore::claim_proxy`].
pub(super) async fn claim_proxy(
    link: &Link,
    keys: &Keys,
    lease: &ProxyLease,
    ttl: std::time::Duration,
) -> Result<Option<ProxyLease>, StoreError> {
    let key = keys.proxy(&lease.id);
    let json = serde_json::to_string(lease)
        .map_err(|e| StoreError::Config(format!("proxy lease: {e}")))?;
    let ttl = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
    let script = Script::new(CLAIM_PROXY_LUA);
    let mut inv = script.key(&key);
    inv.arg(json).arg(&lease.instance).arg(ttl);
    let held: Option<String> = link
        .run(|mut c| async move { inv.invoke_async(&mut c).await })
        .await?;
    Ok(held.and_then(|raw| ProxyLease::parse_stored(&key, &raw)))
}

/// [`crate::LocationStore::release_proxy`].
pub(super) async fn release_proxy(
    link: &Link,
    keys: &Keys,
    id: &str,
    instance: &str,
) -> Result<(), StoreError> {
    let script = Script::new(RELEASE_PROXY_LUA);
    let mut inv = script.key(keys.proxy(id));
    inv.arg(instance);
    link.run(|mut c| async move { inv.invoke_async::<i64>(&mut c).await })
        .await
        .map(drop)
}

/// [`crate::LocationStore::proxies`].
pub(super) async fn proxies(link: &Link, keys: &Keys) -> Result<Vec<ProxyLease>, StoreError> {
    let head = keys.proxy("");
    let found = scan(link, &escape_glob(&format!("{head}*")), "proxy").await?;
    let mut out = Vec::new();
    for key in found {
        let key = String::from_utf8_lossy(&key).into_owned();
        let k = key.clone();
        let raw: Option<String> = link
            .run(|mut c| async move { redis::cmd("GET").arg(&k).query_async(&mut c).await })
            .await?;
        if let Some(l) = raw.and_then(|r| ProxyLease::parse_stored(&key, &r)) {
            out.push(l);
        }
    }
    Ok(out)
}

/// [`crate::Store::set_tenant`].
pub(super) async fn set_tenant(
    link: &Link,
    keys: &Keys,
    domain: &str,
    node: Option<&NodeId>,
) -> Result<(), StoreError> {
    let key = keys.tenant(&domain.to_lowercase());
    let node = node.map(|n| n.as_str().to_owned());
    link.run(|mut c| async move {
        match node {
            Some(n) => {
                redis::cmd("SET")
                    .arg(key)
                    .arg(n)
                    .query_async::<()>(&mut c)
                    .await
            }
            None => redis::cmd("DEL").arg(key).query_async::<()>(&mut c).await,
        }
    })
    .await
}

/// Every `tenant:{domain}` pin (domains lower-cased; values that are not
/// node ids, or keys that are not strings, skipped with a warning).
pub(super) async fn tenants(
    link: &Link,
    keys: &Keys,
) -> Result<BTreeMap<String, NodeId>, StoreError> {
    let found = scan(link, &escape_glob(&keys.tenant_pattern()), "tenant").await?;
    let prefix = keys.tenant("");

    let mut out = BTreeMap::new();
    for chunk in found.chunks(MGET_CHUNK) {
        let values: Vec<Option<Vec<u8>>> = link
            .run(|mut c| async move { redis::cmd("MGET").arg(chunk).query_async(&mut c).await })
            .await?;
        for (key, value) in chunk.iter().zip(values) {
            let key = String::from_utf8_lossy(key);
            let Some(domain) = key.strip_prefix(&prefix).filter(|d| !d.is_empty()) else {
                continue;
            };
            // MGET answers nil for a key of another type.
            let Some(value) = value else {
                tracing::warn!(key = %key, "tenant key is not a string; skipped");
                continue;
            };
            match NodeId::new(String::from_utf8_lossy(&value)) {
                Ok(id) => {
                    out.insert(domain.to_lowercase(), id);
                }
                Err(e) => tracing::warn!(key = %key, error = %e, "bad tenant pin; skipped"),
            }
        }
    }
    Ok(out)
}
