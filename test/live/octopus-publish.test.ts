// Live publish into a throwaway space of a real Octopus Server, then checks the result through the
// API and that a second publish changes nothing. Skipped unless OCTOPUS_DR_LIVE_URL and
// OCTOPUS_DR_LIVE_API_KEY are set (a System administrator's key: the test creates and deletes a
// space). docs/testing.md, "Live Octopus suite", shows how to run it with the official Octopus container.
import { Client } from '@octopusdeploy/api-client';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { runPublishCli } from '../../scripts/publish/index';
import { writeFixtureTemplates } from '../publish/fixtures';

const url = process.env.OCTOPUS_DR_LIVE_URL;
const apiKey = process.env.OCTOPUS_DR_LIVE_API_KEY;
const describeLive = url && apiKey ? describe : describe.skip;
const BUILT = path.resolve(__dirname, '../../build/templates/powershell');

interface Space {
  Id: string;
  Name: string;
  [field: string]: unknown;
}

describeLive('live Octopus Server: publish into a throwaway space', () => {
  const spaceName = `octopus-dr-live-${Date.now().toString(36)}`;
  let client: Client;
  let space: Space;

  beforeAll(async () => {
    client = await Client.create({ instanceURL: url!, apiKey: apiKey!, userAgentApp: 'octopus-dr-live-tests' });
    space = await client.post<Space>('~/api/spaces', {
      Name: spaceName,
      Description: 'Throwaway space of the octopus-dr live tests; safe to delete.',
      SpaceManagersTeams: ['teams-administrators'],
      SpaceManagersTeamMembers: [],
      IsDefault: false,
      TaskQueueStopped: false,
    });
    await client.doCreate('~/api/{spaceId}/environments', { Name: 'Production' }, { spaceName });
  }, 120_000);

  afterAll(async () => {
    if (!space) return;
    // A space can only be deleted once its task queue is stopped.
    await client.doUpdate(`~/api/spaces/${space.Id}`, { ...space, TaskQueueStopped: true }).catch(() => undefined);
    await client.del(`~/api/spaces/${space.Id}`).catch((error: unknown) => {
      process.stderr.write(`Could not delete the live test space ${spaceName}: ${String(error)}\n`);
    });
  }, 120_000);

  async function publish() {
    let output = '';
    // Prefer the real build; fall back to the stand-in templates of the publisher tests.
    const templates = existsSync(BUILT) ? BUILT : writeFixtureTemplates();
    const { exitCode, result } = await runPublishCli(
      ['--server-url', url!, '--space', spaceName, '--environment', 'Production', '--templates-dir', templates],
      { OCTOPUSDR_OCTOPUS_APIKEY: apiKey },
      { stdout: (t) => (output += t), stderr: (t) => (output += t) },
    );
    expect(output).not.toContain(apiKey!);
    return { exitCode, result, output };
  }

  test('the first publish builds the project; the second changes nothing', async () => {
    const first = await publish();
    expect(first.exitCode).toBe(0);
    const projects = await client.request<{ Items: Array<{ Id: string; Name: string }> }>('~/api/{spaceId}/projects{?partialName}', { spaceName, partialName: 'Octopus DR' });
    const project = projects.Items.find((p) => p.Name === 'Octopus DR');
    expect(project).toBeDefined();
    const runbooks = await client.request<{ Items: Array<{ Name: string; PublishedRunbookSnapshotId: string | null }> }>(
      '~/api/{spaceId}/projects/{projectId}/runbooks{?take}',
      { spaceName, projectId: project!.Id, take: 100 },
    );
    const composed = first.result!.entries.filter((e) => e.kind === 'runbook' && e.outcome !== 'skipped').map((e) => e.name);
    expect(runbooks.Items.map((r) => r.Name).sort()).toEqual([...composed].sort());
    for (const runbook of runbooks.Items) expect(runbook.PublishedRunbookSnapshotId).toBeTruthy();

    const second = await publish();
    expect(second.exitCode).toBe(0);
    expect(second.result!.entries.filter((e) => e.outcome === 'created' || e.outcome === 'updated')).toEqual([]);
  }, 300_000);
});
