// Error translation by SQL Server error number: advice first, the server's own numbers and texts kept.
import { describeServerMessages, hintFor, scrub } from '../../steps/engines/sql/errors';

const context = { server: 'sql01,1433', database: 'Octopus', userName: 'octo' };
const advice: [number, RegExp][] = [
  [18456, /rejected the login for 'octo'.*mixed mode/],
  [4060, /Database 'Octopus' on sql01,1433 does not exist/],
  [3201, /SQL Server service on the server host/],
  [3101, /in use.*Stop the Octopus Server nodes/],
  [3159, /tail of its log has not been backed up/],
  [3154, /different database/],
  [1844, /cannot compress backups/],
  [3241, /damaged or not a SQL Server backup/],
  [3242, /damaged or not a SQL Server backup/],
  [3183, /failed its integrity check/],
  [3013, /stopped by SQL Server/],
];

test.each(advice)('error %i has advice and keeps the server text', (number, pattern) => {
  const { text, number: root } = describeServerMessages([{ number, message: `server text ${number}` }], context);
  expect(root).toBe(number);
  expect(text).toMatch(pattern);
  expect(text).toContain(`(SQL Server error ${number}: server text ${number})`);
  expect(hintFor(number)).toBeDefined();
});

test('the root cause is the specific error, not the 3013 that follows it', () => {
  const { text, number } = describeServerMessages(
    [{ number: 3201, message: "Cannot open backup device 'x'." }, { number: 3013, message: 'BACKUP DATABASE is terminating abnormally.' }],
    context,
  );
  expect(number).toBe(3201);
  expect(text).toMatch(/^SQL Server could not open the backup file/);
  expect(text).toContain("SQL Server error 3201: Cannot open backup device 'x'.; SQL Server error 3013: BACKUP DATABASE is terminating abnormally.");
});

test('an unknown number keeps the server text as the message', () => {
  expect(describeServerMessages([{ number: 50123, message: 'custom' }], context)).toEqual({ text: 'SQL Server error 50123: custom', number: 50123 });
});

test('scrub removes every secret, the longest first', () => {
  expect(scrub('pw=abc123, cs=Server=x;Password=abc123', ['abc123', 'Server=x;Password=abc123'])).toBe('pw=********, cs=********');
});
