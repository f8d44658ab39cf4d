// What a Node 20 user does to go through HTTPS_PROXY: Node 20's own fetch
// has no proxy support (NODE_USE_ENV_PROXY needs Node >= 22.21 or 24), so
// undici's fetch with its EnvHttpProxyAgent, which reads HTTPS_PROXY and
// NO_PROXY. Certificates: Node's store plus NODE_EXTRA_CA_CERTS.
// Usage: node fetch.mjs URL  (sends Authorization: Bearer $PKG_TOKEN)
import { fetch, EnvHttpProxyAgent } from 'undici';

const response = await fetch(process.argv[2], {
  dispatcher: new EnvHttpProxyAgent(),
  headers: { authorization: `Bearer ${process.env.PKG_TOKEN}` },
});
console.log(`status=${response.status}`);
console.log(`x-you-sent=${response.headers.get('x-you-sent')}`);
console.log(await response.text());
