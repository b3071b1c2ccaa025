// Whose a set is (origin.ts): the server and database family its header records; pure.
import { compareOrigins, originOf } from '../../steps/engines/database-backup/origin';

const origin = (server: string | null, familyGuid: string | null) => ({ server, familyGuid });

test('the same server in any case and the same family is the same origin; either differing is another; either missing is unknown', () => {
  expect(compareOrigins(origin('PRODSQL\\OCTO', 'AB-CD'), origin('prodsql\\octo', 'ab-cd'))).toBe('same');
  expect(compareOrigins(origin('PRODSQL', 'AB'), origin('STAGESQL', 'AB'))).toBe('other');
  expect(compareOrigins(origin('PRODSQL', 'AB'), origin('PRODSQL', 'CD'))).toBe('other');
  expect(compareOrigins(origin('PRODSQL', null), origin('STAGESQL', 'AB'))).toBe('other');
  expect(compareOrigins(origin('PRODSQL', null), origin('PRODSQL', 'AB'))).toBe('unknown');
  expect(compareOrigins(origin(null, 'AB'), origin('PRODSQL', 'AB'))).toBe('unknown');
});

test("a set's origin: the header's server, else the manifest's; blank is not recorded", () => {
  const manifest = (headerServer: string, server: string | undefined, familyGuid: string | null) =>
    ({ manifest: { header: { serverName: headerServer, familyGuid }, server: server === undefined ? undefined : { name: server } } }) as never;
  expect(originOf(manifest('SQL01', 'ignored', 'F'))).toEqual({ server: 'SQL01', familyGuid: 'F', groupDatabaseId: null });
  expect(originOf(manifest('', 'SQL02', ' '))).toEqual({ server: 'SQL02', familyGuid: null, groupDatabaseId: null });
  expect(originOf(manifest(' ', undefined, null))).toEqual({ server: null, familyGuid: null, groupDatabaseId: null });
  // An availability group's database ID, when the manifest records one.
  expect(originOf({ manifest: { header: { serverName: 'SQL01', familyGuid: 'F' }, groupDatabaseId: ' G ' } } as never)).toEqual({ server: 'SQL01', familyGuid: 'F', groupDatabaseId: 'G' });
});
