// Projects.
import { collection, route, validationError, type Route } from '../http';
import { addProject } from '../store';
import { SPACE, bodyOf, created, type RouteContext } from './shared';

export function projectRoutes({ state, spaceOf, projectOf }: RouteContext): Route[] {
  return [
    route('GET', `${SPACE}/projects`, 'ProjectView', (r) => collection('Project', r.path, spaceOf(r).projects, r.query)),
    route('GET', `${SPACE}/projects/{id}`, 'ProjectView', (r) => projectOf(spaceOf(r), r.params.id)),
    route('POST', `${SPACE}/projects`, 'ProjectCreate', (r) => {
      const space = spaceOf(r);
      const body = bodyOf(r);
      const problems: string[] = [];
      const name = String(body.Name ?? '').trim();
      if (!name) problems.push('Please provide a name for the project.');
      else if (space.projects.some((p) => p.Name.toLowerCase() === name.toLowerCase())) problems.push(`A project with the name '${name}' already exists. Please choose a different name.`);
      if (!space.projectGroups.some((g) => g.Id === body.ProjectGroupId)) problems.push(`The project group '${body.ProjectGroupId ?? ''}' does not exist.`);
      if (!space.lifecycles.some((l) => l.Id === body.LifecycleId)) problems.push(`The lifecycle '${body.LifecycleId ?? ''}' does not exist.`);
      if (problems.length) throw validationError(...problems);
      const project = addProject(state, space, { Name: name, Description: body.Description ?? '', ProjectGroupId: body.ProjectGroupId, LifecycleId: body.LifecycleId });
      return created(project);
    }),
    route('PUT', `${SPACE}/projects/{id}`, 'ProjectEdit', (r) => {
      const space = spaceOf(r);
      const project = projectOf(space, r.params.id);
      const body = bodyOf(r);
      const name = String(body.Name ?? '').trim();
      if (!name) throw validationError('Please provide a name for the project.');
      if (space.projects.some((p) => p.Id !== project.Id && p.Name.toLowerCase() === name.toLowerCase())) throw validationError(`A project with the name '${name}' already exists. Please choose a different name.`);
      Object.assign(project, { Name: name, Description: body.Description ?? project.Description, IsDisabled: body.IsDisabled ?? project.IsDisabled });
      return project;
    }),
  ];
}
