// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- an ambient declaration for every tsconfig that compiles this file
/// <reference path="./class-transformer-storage.d.ts" />
import { ValidationArguments, ValidationTypes, getMetadataStorage } from 'class-validator';
import { defaultMetadataStorage } from 'class-transformer/cjs/storage';
import { TransformationType } from 'class-transformer';

/**
 * A fast path for accepting a device message, compiled once per message class from the same decorators
 * class-validator reads, running the same constraint functions.
 *
 * Why: class-validator looks a class's metadata up again on every validate call, and that lookup walks every
 * class in the process that has validation metadata (in the server: every DTO) to find ancestors; with
 * class-transformer's copy before it, that was about a quarter of the server's CPU per state report in
 * `npm run bench:rollout` (docs/rollouts.md "Performance").
 *
 * The plan only ever says "accepted". It refuses whatever it does not model exactly (a decorator type other
 * than the ones below, a class-transformer @Transform/@Expose/@Exclude, a nested value that is not a plain
 * object, an async constraint), and then validateAs() runs class-transformer and class-validator as before,
 * so every rejection, and its message, is class-validator's own. For that to hold the plan must never accept
 * what class-validator refuses: validation-plan.spec.ts checks it on every message class with seeded
 * mutations of valid messages.
 */

type Plain = Record<string, unknown>;
type MessageClass = abstract new () => object;

interface ConstraintStep {
  each: boolean;
  validateIf?: (object: object, value: unknown) => boolean;
  validate: (value: unknown, args: ValidationArguments) => unknown;
  constraints: unknown[];
}

interface PropertyPlan {
  name: string;
  /** @IsOptional / @ValidateIf: when one says false, the property is not checked at all */
  conditions: ((object: object, value: unknown) => boolean)[];
  steps: ConstraintStep[];
  /** @ValidateNested with class-transformer's @Type: the class each nested plain object must satisfy */
  nested: MessageClass | null;
}

interface ClassPlan {
  targetName: string;
  known: Set<string>;
  /** fields the class initialises (a command's `type`): the plain message must carry them itself */
  initialised: string[];
  properties: PropertyPlan[];
}

/** The decorator types the plan models; anything else (promise validation, say) leaves the class to class-validator. */
const MODELLED = new Set<string>([
  ValidationTypes.CUSTOM_VALIDATION,
  ValidationTypes.IS_DEFINED,
  ValidationTypes.NESTED_VALIDATION,
  ValidationTypes.CONDITIONAL_VALIDATION,
  ValidationTypes.WHITELIST,
]);

const plans = new Map<MessageClass, ClassPlan | null>();

function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** The class and its ancestors, each of which class-transformer reads its own metadata for. */
function lineage(cls: MessageClass): Array<new () => object> {
  const chain: Array<new () => object> = [];
  for (let c: unknown = cls; typeof c === 'function' && c !== Function.prototype; c = Object.getPrototypeOf(c)) {
    chain.push(c as new () => object);
  }
  return chain;
}

/**
 * True when class-transformer would build the instance other than by copying the message: @Transform,
 * @Expose/@Exclude on a property or on the class (an `excludeAll` class copies nothing), or a @Type on a
 * property the plan does not validate as nested (it would convert the value the plan checks as it came).
 */
function transformerChanges(cls: MessageClass, properties: Iterable<string>, nested: Set<string>): boolean {
  const target = cls as unknown as new () => object;
  if (lineage(cls).some((c) => defaultMetadataStorage.getStrategy(c) !== 'none')) return true;
  if (defaultMetadataStorage.getExposedMetadatas(target).length > 0) return true;
  if (defaultMetadataStorage.getExcludedMetadatas(target).length > 0) return true;
  for (const property of properties) {
    if (defaultMetadataStorage.findTransformMetadatas(target, property, TransformationType.PLAIN_TO_CLASS).length > 0)
      return true;
    if (!nested.has(property) && defaultMetadataStorage.findTypeMetadata(target, property)) return true;
  }
  return false;
}

/**
 * The nested class class-transformer would build for `property` (its @Type), or undefined when the plan
 * cannot tell: no @Type, a discriminator or a type chosen from the value, or a Map or Set property (which
 * class-transformer builds, and class-validator walks entry by entry).
 */
function nestedClassOf(cls: MessageClass, property: string): MessageClass | undefined {
  const type = defaultMetadataStorage.findTypeMetadata(cls as unknown as new () => object, property);
  if (!type || type.options?.discriminator || type.typeFunction.length > 0) return undefined;
  if (type.reflectedType === Map || type.reflectedType === Set) return undefined;
  const nested = type.typeFunction() as unknown;
  return typeof nested === 'function' ? (nested as MessageClass) : undefined;
}

function compile(cls: MessageClass): ClassPlan | null {
  const storage = getMetadataStorage();
  // the arguments validateSync(instance, { whitelist, forbidNonWhitelisted }) passes: no groups, always false
  const metadatas = storage.getTargetValidationMetadatas(cls as unknown as new () => object, '', false, false);
  if (metadatas.length === 0) return null; // class-validator refuses it (forbidUnknownValues)
  const byProperty = new Map<string, typeof metadatas>();
  for (const metadata of metadatas) {
    if (!MODELLED.has(metadata.type)) return null;
    byProperty.set(metadata.propertyName, [...(byProperty.get(metadata.propertyName) ?? []), metadata]);
  }
  const known = new Set(byProperty.keys());
  // class fields the instance gets from its constructor are whitelist-checked by class-validator too
  const fresh = new (cls as unknown as new () => Plain)();
  for (const own of Object.keys(fresh)) if (!known.has(own)) return null;
  const initialised = Object.keys(fresh).filter((own) => fresh[own] !== undefined);
  const properties: PropertyPlan[] = [];
  for (const [name, list] of byProperty) {
    const plan: PropertyPlan = { name, conditions: [], steps: [], nested: null };
    for (const metadata of list) {
      if (metadata.type === ValidationTypes.CONDITIONAL_VALIDATION) {
        plan.conditions.push(metadata.constraints[0] as (object: object, value: unknown) => boolean);
      } else if (metadata.type === ValidationTypes.NESTED_VALIDATION) {
        const nested = nestedClassOf(cls, name);
        if (!nested) return null;
        plan.nested = nested;
      } else if (metadata.type !== ValidationTypes.WHITELIST) {
        for (const constraint of storage.getTargetValidatorConstraints(metadata.constraintCls)) {
          if (constraint.async) return null;
          const instance = constraint.instance;
          plan.steps.push({
            each: metadata.each,
            validateIf: metadata.validateIf,
            validate: (value, args) => instance.validate(value, args),
            constraints: metadata.constraints,
          });
        }
      }
    }
    properties.push(plan);
  }
  const nested = new Set(properties.filter((plan) => plan.nested).map((plan) => plan.name));
  if (transformerChanges(cls, known, nested)) return null;
  return { targetName: cls.name, known, initialised, properties };
}

function planOf(cls: MessageClass): ClassPlan | null {
  let plan = plans.get(cls);
  if (plan === undefined) {
    try {
      plan = compile(cls);
    } catch {
      plan = null; // a decorator that throws here throws in class-transformer too: it is validateAs's to report
    }
    plans.set(cls, plan);
  }
  return plan;
}

function stepPasses(step: ConstraintStep, plan: ClassPlan, property: string, object: Plain, value: unknown): boolean {
  if (step.validateIf && !step.validateIf(object, value)) return true;
  const args: ValidationArguments = {
    targetName: plan.targetName,
    property,
    object,
    value,
    constraints: step.constraints as ValidationArguments['constraints'],
  };
  const check = (item: unknown): boolean => {
    const result = step.validate(item, args);
    // an async constraint's promise is class-validator's to await
    const pending =
      typeof result === 'object' && result !== null && typeof (result as PromiseLike<unknown>).then === 'function';
    return !pending && Boolean(result);
  };
  return step.each && Array.isArray(value) ? value.every(check) : check(value);
}

function nestedPasses(nested: MessageClass, value: unknown): boolean {
  if (value === undefined) return true; // class-validator's nested check skips undefined; other steps judge it
  if (Array.isArray(value)) return value.every((item) => isPlainObject(item) && accepts(nested, item));
  return isPlainObject(value) && accepts(nested, value);
}

/**
 * True when `plain` (a JSON.parse result) certainly passes validateSync(plainToInstance(cls, plain),
 * { whitelist: true, forbidNonWhitelisted: true }). False means "not known": ask class-validator.
 */
export function acceptsByPlan(cls: MessageClass, plain: unknown): boolean {
  try {
    return accepts(cls, plain);
  } catch {
    return false; // a constraint that throws: class-validator decides, and says so
  }
}

function accepts(cls: MessageClass, plain: unknown): boolean {
  const plan = planOf(cls);
  if (!plan || !isPlainObject(plain)) return false;
  for (const key of Object.keys(plain)) if (!plan.known.has(key)) return false;
  // the instance would start from the class's value: only when the message sets it are the two the same
  for (const own of plan.initialised) if (!Object.prototype.hasOwnProperty.call(plain, own)) return false;
  for (const property of plan.properties) {
    const value = Object.prototype.hasOwnProperty.call(plain, property.name) ? plain[property.name] : undefined;
    if (!property.conditions.every((condition) => condition(plain, value))) continue;
    for (const step of property.steps) if (!stepPasses(step, plan, property.name, plain, value)) return false;
    if (property.nested && !nestedPasses(property.nested, value)) return false;
  }
  return true;
}
