#pragma once
// The pages' models: containers (grouped by Compose project), images, volumes, audit.
#include "audit_model.hpp"
#include "container_model.hpp"
#include "image_volume_models.hpp"
