#pragma once
// The Images and Volumes pages: lists with the containers using each, and
// delete with a confirmation that names those users.
#include <QLabel>
#include <QPushButton>
#include <QTableView>
#include <QWidget>

#include "docker_controller.hpp"
#include "models.hpp"

namespace cordon::gui {

class ErrorBanner;

class ImagesPage : public QWidget {
    Q_OBJECT
  public:
    explicit ImagesPage(DockerController* docker, QWidget* parent = nullptr);
    ImageModel* model() const { return model_; }
    QTableView* view() const { return view_; }
    void reload();
    void deleteSelected();  // asks first

  private:
    const ImageRow* selected() const;
    DockerController* docker_;
    ImageModel* model_;
    QTableView* view_;
    QLabel* summary_;
    ErrorBanner* error_;
    QPushButton* delete_;
};

class VolumesPage : public QWidget {
    Q_OBJECT
  public:
    explicit VolumesPage(DockerController* docker, QWidget* parent = nullptr);
    VolumeModel* model() const { return model_; }
    QTableView* view() const { return view_; }
    void reload();
    void deleteSelected();  // asks first

  private:
    const VolumeRow* selected() const;
    DockerController* docker_;
    VolumeModel* model_;
    QTableView* view_;
    QLabel* summary_;
    ErrorBanner* error_;
    QPushButton* delete_;
};

}  // namespace cordon::gui
