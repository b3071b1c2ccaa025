import { stepDescription } from './description';
import { defineParameter, defineTemplate } from './model';
import { OFFSITE_SOURCE_HELP, offsiteDecryptionParams, offsiteRestoreParams } from './offsite-parameters';
import {
  dryRun,
  fileStoreFolders,
  fileStoreHomeDirectory,
  nodePath,
  restoreLockWaitMinutes,
  restoreReplaceExisting,
  restoreRollBackOnFailure,
  restoreSource,
  standbyApiKey,
  standbyOctopusVersion,
  standbyServerUrl,
} from './parameters';

export const restoreFileStore = defineTemplate({
  stepId: 'restore-file-store',
  name: 'Octopus DR - Restore File Store',
  description: stepDescription(
    'Restores the Octopus Server file store from a backup made by *Octopus DR - Back Up File Store* (a full set, or an ' +
      'incremental with the archives it needs). Checks every archive for unsafe entries (absolute paths, `..`, drive ' +
      'letters, links) before writing anything, extracts into a staging folder beside each destination checking every ' +
      'SHA-256, and only then swaps it in: what was there is moved aside to `<folder>.before-restore-<UTC timestamp>`, ' +
      'never deleted (a swap that fails half-way is put back). A non-empty destination is only replaced when *Replace existing* is set. *Verify only* checks a ' +
      'backup\'s hashes without restoring it.',
  ),
  id: '02c0c7d4-b731-46ee-9cfc-7e7d8fd9ebbe',
  bashId: '1aa1808f-ad46-4610-9a9d-13f3ec92959c',
  version: 3,
  lastModified: '2026-12-02T00:00:00.000Z',
  category: 'octopus',
  params: {
    source: {
      ...restoreSource,
      helpText: `${restoreSource.helpText} ${OFFSITE_SOURCE_HELP}`,
    },
    homeDirectory: fileStoreHomeDirectory,
    folders: fileStoreFolders,
    include: defineParameter({
      name: 'OctopusDr.Restore.Include',
      label: 'Folders to restore',
      helpText:
        'Restore only these folders, one per line or comma-separated (e.g. `Packages`). Empty restores every folder in the backup.',
      type: 'string',
      multiLine: true,
      required: false,
      defaultValue: '',
      flag: 'include',
    }),
    replaceExisting: restoreReplaceExisting,
    rollBackOnFailure: restoreRollBackOnFailure,
    verifyOnly: defineParameter({
      name: 'OctopusDr.FileStore.VerifyOnly',
      label: 'Verify only',
      helpText:
        'Check the backup (every archive of the chain opens, nothing unsafe in it, every file present with the right ' +
        'SHA-256) without restoring anything. No destination is needed.',
      type: 'bool',
      required: false,
      defaultValue: 'False',
      flag: 'verify-only',
    }),
    dryRun,
    standbyServerUrl,
    standbyOctopusVersion,
    standbyApiKey,
    lockWaitMinutes: restoreLockWaitMinutes,
    ...offsiteRestoreParams,
    ...offsiteDecryptionParams,
    nodePath,
  },
});
