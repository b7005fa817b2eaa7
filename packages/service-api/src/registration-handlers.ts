import { Errors } from '@opendps/model';
import { registrations } from '@opendps/store';
import { header, pathId, type OperationHandler } from './context';
import { assertQueryAll, pageOptions, queryResult } from './query';

const notFound = (id: string) => Errors.registrationNotFound(`The device registration '${id}' was not found.`);

export const getRegistration: OperationHandler = async (context) => {
  const id = pathId(context);
  const state = await registrations(context.store, context.instance.idScope).get(id);
  if (!state) throw notFound(id);
  return { status: 200, body: state };
};

export const deleteRegistration: OperationHandler = async (context) => {
  const id = pathId(context);
  const ifMatch = header(context, 'if-match');
  const deleted = await registrations(context.store, context.instance.idScope).delete(id, ifMatch !== undefined ? { ifMatch } : {});
  if (!deleted) throw notFound(id);
  return { status: 204 };
};

/** `POST /registrations/{enrollmentGroupId}/query`: the states of the devices provisioned through one group. */
export const queryRegistrations: OperationHandler = async (context) => {
  assertQueryAll(context.body);
  const options = pageOptions(context);
  const page = await registrations(context.store, context.instance.idScope).listByEnrollmentGroup(pathId(context), options);
  return queryResult(page, 'DeviceRegistration', options, (state) => state);
};
