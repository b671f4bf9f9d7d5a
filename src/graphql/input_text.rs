//! Strings that carry U+0000 are refused before validation, whatever field
//! they are meant for. PostgreSQL can store neither a NUL in `text` nor a
//! `\u0000` in `jsonb`, and its refusal comes from deep in a statement (or
//! from the middle of a batch); SQLite would store one. Refusing them at
//! the door gives both backends one answer, BAD_USER_INPUT, and keeps
//! statements from failing half-way. Object keys of JSON arguments count:
//! they are strings in `jsonb` too.

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensionValues, Name, Pos, Positioned, ServerError, ServerResult, Variables,
};
use async_graphql_value::{ConstValue, Value};

use super::error::code;

/// BAD_USER_INPUT when any string of the document's literals (arguments,
/// directive arguments, variable defaults) or of the variables holds U+0000.
pub fn refuse_nul(document: &ExecutableDocument, variables: &Variables) -> ServerResult<()> {
    for (name, value) in variables.iter() {
        if has_nul(name) || const_has_nul(value) {
            return Err(refused(None, &format!("variable ${name}")));
        }
    }
    for (_, operation) in document.operations.iter() {
        let operation = &operation.node;
        for definition in &operation.variable_definitions {
            if let Some(default) = &definition.node.default_value {
                if const_has_nul(&default.node) {
                    let name = &definition.node.name.node;
                    return Err(refused(
                        Some(default.pos),
                        &format!("the default of ${name}"),
                    ));
                }
            }
            directives(&definition.node.directives)?;
        }
        directives(&operation.directives)?;
        selections(&operation.selection_set)?;
    }
    for fragment in document.fragments.values() {
        directives(&fragment.node.directives)?;
        selections(&fragment.node.selection_set)?;
    }
    Ok(())
}

fn selections(set: &Positioned<SelectionSet>) -> ServerResult<()> {
    for item in &set.node.items {
        match &item.node {
            Selection::Field(field) => {
                arguments(&field.node.arguments)?;
                directives(&field.node.directives)?;
                selections(&field.node.selection_set)?;
            }
            Selection::FragmentSpread(spread) => directives(&spread.node.directives)?,
            Selection::InlineFragment(fragment) => {
                directives(&fragment.node.directives)?;
                selections(&fragment.node.selection_set)?;
            }
        }
    }
    Ok(())
}

fn directives(list: &[Positioned<Directive>]) -> ServerResult<()> {
    list.iter()
        .try_for_each(|directive| arguments(&directive.node.arguments))
}

fn arguments(list: &[(Positioned<Name>, Positioned<Value>)]) -> ServerResult<()> {
    for (name, value) in list {
        if value_has_nul(&value.node) {
            return Err(refused(Some(value.pos), &format!("argument {}", name.node)));
        }
    }
    Ok(())
}

fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

fn value_has_nul(value: &Value) -> bool {
    match value {
        Value::String(text) => has_nul(text),
        Value::List(items) => items.iter().any(value_has_nul),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| has_nul(key) || value_has_nul(value)),
        _ => false,
    }
}

fn const_has_nul(value: &ConstValue) -> bool {
    match value {
        ConstValue::String(text) => has_nul(text),
        ConstValue::List(items) => items.iter().any(const_has_nul),
        ConstValue::Object(fields) => fields
            .iter()
            .any(|(key, value)| has_nul(key) || const_has_nul(value)),
        _ => false,
    }
}

fn refused(pos: Option<Pos>, place: &str) -> ServerError {
    let mut error = ServerError::new(
        format!("{place} holds the character U+0000, which no string may contain"),
        pos,
    );
    let mut extensions = ErrorExtensionValues::default();
    extensions.set("code", code::BAD_USER_INPUT);
    error.extensions = Some(extensions);
    error
}
