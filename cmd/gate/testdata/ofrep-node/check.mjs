// Evaluates the cases of ofrep-cases.json against the gate with the official
// OpenFeature OFREP provider and server SDK, and prints one JSON line per
// case with what the SDK resolved. Usage: node check.mjs BASE_URL CASES [API_KEY]
import { readFileSync } from 'node:fs';
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';

const [baseUrl, casesFile, apiKey] = process.argv.slice(2);
const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
const headers = apiKey ? { 'X-API-Key': apiKey } : {};
await OpenFeature.setProviderAndWait(new OFREPProvider({ baseUrl, headers }));
const client = OpenFeature.getClient();

const defaults = { boolean: false, string: '', integer: -1, float: -1, object: {} };
for (const c of cases) {
  const args = [c.flag, defaults[c.type], c.context];
  let details;
  switch (c.type) {
    case 'boolean': details = await client.getBooleanDetails(...args); break;
    case 'string': details = await client.getStringDetails(...args); break;
    case 'integer':
    case 'float': details = await client.getNumberDetails(...args); break;
    default: details = await client.getObjectDetails(...args);
  }
  console.log(JSON.stringify({
    flag: c.flag, context: c.context, value: details.value, variant: details.variant,
    reason: details.reason, errorCode: details.errorCode ?? null, metadata: details.flagMetadata,
  }));
}
await OpenFeature.close();
