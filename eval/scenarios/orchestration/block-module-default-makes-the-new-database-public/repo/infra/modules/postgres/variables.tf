variable "name" {
  type = string
}

variable "instance_class" {
  type    = string
  default = "db.t3.medium"
}

variable "subnet_group" {
  type = string
}

# Kept true for the legacy BI connection; every new database must pass false.
variable "publicly_accessible" {
  type    = bool
  default = true
}

variable "backup_retention_days" {
  type    = number
  default = 7
}
