// Project groups, lifecycles and environments.
import { collection, route, validationError, type Route } from '../http';
import { addEnvironment } from '../store';
import { SPACE, bodyOf, created, type RouteContext } from './shared';

export function lookupRoutes({ state, spaceOf, find }: RouteContext): Route[] {
  return [
    route('GET', `${SPACE}/projectgroups`, 'ProjectGroupView', (r) => collection('ProjectGroup', r.path, spaceOf(r).projectGroups, r.query)),
    route('GET', `${SPACE}/projectgroups/{id}`, 'ProjectGroupView', (r) => find(spaceOf(r).projectGroups, r.params.id)),
    route('GET', `${SPACE}/lifecycles`, 'LifecycleView', (r) => collection('Lifecycle', r.path, spaceOf(r).lifecycles, r.query)),
    route('GET', `${SPACE}/lifecycles/{id}`, 'LifecycleView', (r) => find(spaceOf(r).lifecycles, r.params.id)),
    route('GET', `${SPACE}/environments`, 'EnvironmentView', (r) => collection('Environment', r.path, spaceOf(r).environments, r.query)),
    route('GET', `${SPACE}/environments/{id}`, 'EnvironmentView', (r) => find(spaceOf(r).environments, r.params.id)),
    route('POST', `${SPACE}/environments`, 'EnvironmentCreate', (r) => {
      const space = spaceOf(r);
      const name = String(bodyOf(r).Name ?? '').trim();
      if (!name) throw validationError('Please provide a name for the environment.');
      if (space.environments.some((e) => e.Name.toLowerCase() === name.toLowerCase())) throw validationError(`An environment with the name '${name}' already exists.`);
      return created(addEnvironment(state, space, name));
    }),
  ];
}
