// Issue 20: dockerode (npm), a Node Docker client that sends what the docker CLI does not
// (a "name" in the create body, "hijack" in exec start, "comment" in commit, "Mountpoint"
// in volume create, attach and exec streams hijacked its own way), through Cordon's socket
// (DOCKER_HOST) with isolation on.
// Each check prints "ok NAME" or "FAIL NAME: ..."; the last line is
// "node: N passed, N failed"; the exit status is 1 when anything failed.
// usage: node conformance.js IMAGE
'use strict';
const Docker = require('dockerode');
const fs = require('fs');
const os = require('os');
const path = require('path');

const IMAGE = process.argv[2];
const PREFIX = 'cordon-node-';
const socketPath = (process.env.DOCKER_HOST || '').replace(/^unix:\/\//, '');
const docker = new Docker({ socketPath });
const results = [];

async function check(name, fn) {
  try {
    await fn();
    results.push([name, null]);
    console.log(`ok ${name}`);
  } catch (e) {
    results.push([name, String(e && e.stack ? e.stack : e)]);
    console.log(`FAIL ${name}: ${e && e.message ? e.message : e}`);
  }
}

function assert(cond, what) {
  if (!cond) throw new Error(what);
}

// Reads a hijacked stream until `needle` shows up (or it ends, or 60 s pass).
function readUntil(stream, needle) {
  return new Promise((resolve) => {
    let got = Buffer.alloc(0);
    const done = () => { clearTimeout(timer); resolve(got.toString('latin1')); };
    const timer = setTimeout(done, 60000);
    stream.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.includes(needle)) done();
    });
    stream.on('end', done);
    stream.on('error', done);
  });
}

async function removeAll() {
  const cs = await docker.listContainers({ all: true, filters: { name: [PREFIX] } });
  for (const c of cs) await docker.getContainer(c.Id).remove({ force: true });
  const vs = await docker.listVolumes({ filters: { name: [PREFIX] } });
  for (const v of vs.Volumes || []) await docker.getVolume(v.Name).remove({ force: true });
}

function collect(stream) {
  return new Promise((resolve, reject) => {
    const parts = [];
    stream.on('data', (d) => parts.push(d));
    stream.on('end', () => resolve(Buffer.concat(parts)));
    stream.on('error', reject);
  });
}

async function main() {
  await removeAll();

  await check('create with a name in the body, start, wait', async () => {
    const c = await docker.createContainer({ Image: IMAGE, Cmd: ['true'], name: PREFIX + 'named' });
    const info = await c.inspect();
    assert(info.Name === '/' + PREFIX + 'named', `name ${info.Name}`);
    await c.start();
    const w = await c.wait();
    assert(w.StatusCode === 0, JSON.stringify(w));
    await c.remove();
  });

  await check('attach with stdin (hijack)', async () => {
    const c = await docker.createContainer({
      Image: IMAGE, Cmd: ['cat'], name: PREFIX + 'attach', OpenStdin: true, StdinOnce: false,
    });
    const stream = await c.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true });
    await c.start();
    stream.write('through-node-attach\n');
    const got = await readUntil(stream, 'through-node-attach');
    stream.destroy();
    await c.remove({ force: true });
    assert(got.includes('through-node-attach'), JSON.stringify(got));
  });

  await check('exec with stdin (hijack field in the body)', async () => {
    const c = await docker.createContainer({ Image: IMAGE, Cmd: ['sleep', '600'], name: PREFIX + 'exec' });
    await c.start();
    const ex = await c.exec({ Cmd: ['cat'], AttachStdin: true, AttachStdout: true, AttachStderr: true });
    const stream = await ex.start({ hijack: true, stdin: true });
    stream.write('through-node-exec\n');
    const got = await readUntil(stream, 'through-node-exec');
    stream.destroy();
    await c.remove({ force: true });
    assert(got.includes('through-node-exec'), JSON.stringify(got));
  });

  await check('logs follow', async () => {
    const c = await docker.createContainer({
      Image: IMAGE, Cmd: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 1; done'], name: PREFIX + 'logs', Tty: true,
    });
    await c.start();
    const stream = await c.logs({ follow: true, stdout: true, stderr: true });
    const text = (await collect(stream)).toString();
    await c.remove({ force: true });
    assert(text.replace(/\r/g, '') === 'line1\nline2\nline3\n', JSON.stringify(text));
  });

  await check('commit with a comment', async () => {
    const c = await docker.createContainer({ Image: IMAGE, Cmd: ['sh', '-c', 'echo committed > /c'], name: PREFIX + 'commit' });
    await c.start();
    await c.wait();
    await c.commit({ repo: 'cordon-node/committed', tag: '1', comment: 'from dockerode' });
    const img = await docker.getImage('cordon-node/committed:1').inspect();
    assert(img.Comment === 'from dockerode', `comment ${img.Comment}`);
    await c.remove({ force: true });
    await docker.getImage('cordon-node/committed:1').remove({ force: true });
  });

  await check('volume create with a Mountpoint field', async () => {
    const v = await docker.createVolume({ Name: PREFIX + 'vol', Mountpoint: '/ignored-by-dockerd' });
    const info = await docker.getVolume(PREFIX + 'vol').inspect();
    assert(info.Name === PREFIX + 'vol', JSON.stringify(v));
    assert(info.Mountpoint !== '/ignored-by-dockerd', info.Mountpoint);
    await docker.getVolume(PREFIX + 'vol').remove();
  });

  await check('build (classic builder, tar context)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cordon-node-build-'));
    fs.writeFileSync(path.join(dir, 'Dockerfile'),
      `FROM ${IMAGE}\nRUN echo built-by-dockerode > /built\nCMD ["cat", "/built"]\n`);
    const stream = await docker.buildImage({ context: dir, src: ['Dockerfile'] }, { t: 'cordon-node/built:1' });
    await new Promise((resolve, reject) => docker.modem.followProgress(stream, (err) => (err ? reject(err) : resolve())));
    fs.rmSync(dir, { recursive: true, force: true });
    const c = await docker.createContainer({ Image: 'cordon-node/built:1', name: PREFIX + 'built' });
    await c.start();
    await c.wait();
    const out = (await c.logs({ stdout: true })).toString();
    await c.remove({ force: true });
    await docker.getImage('cordon-node/built:1').remove({ force: true });
    assert(out.includes('built-by-dockerode'), JSON.stringify(out));
  });

  // Cordon's own answer; with CORDON_ISOLATION=direct (dockerd's socket, the proxy
  // bypassed: the baseline) there is nothing to compare it with.
  if (process.env.CORDON_ISOLATION !== 'direct') await check('a refusal names its rule', async () => {
    if (process.env.CORDON_ISOLATION === 'off') {
      // The twin: with isolation off the proxy forwards and dockerd decides.
      const c = await docker.createContainer({ Image: IMAGE, Cmd: ['true'], name: PREFIX + 'priv', HostConfig: { Privileged: true } });
      await c.start();
      const w = await c.wait();
      await c.remove({ force: true });
      assert(w.StatusCode === 0, JSON.stringify(w));
      return;
    }
    let refused = null;
    try {
      await docker.createContainer({ Image: IMAGE, name: PREFIX + 'priv', HostConfig: { Privileged: true } });
    } catch (e) {
      refused = e;
    }
    assert(refused, 'a privileged container was created');
    assert(refused.statusCode === 403, `status ${refused.statusCode}`);
    assert(String(refused.message).includes('[rule privileged'), refused.message);
  });

  await removeAll();
  const failed = results.filter((r) => r[1]);
  for (const [name, detail] of failed) console.error(`--- ${name}\n${detail}`);
  console.log(`node: ${results.length - failed.length} passed, ${failed.length} failed`);
  process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
  console.log(`FAIL setup: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
